"""Beyond one machine: recording sharded on Ray, and rankings merged exactly over shards."""
