//! Client-side tools for kvstore: the `kvcli` shell and the `kvbench` load generator.
