//! Append-only log files: manifest, record reader, check-aof. (in progress)
