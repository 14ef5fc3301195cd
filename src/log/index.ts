export { createLogger, silentLogger, parseLogLevel, LOG_LEVELS, REDACTED_PATHS, type Logger, type LoggerOptions } from './logger.js'
