export { CircleNode, type CircleNodeOptions, type NodeCircle, type ServedCircle, type NodeRedisOptions, type NodeFailure } from './circle-node.js'
