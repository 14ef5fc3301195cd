export { CircleNode, type CircleNodeOptions, type NodeCircle, type ServedCircle } from './circle-node.js'
