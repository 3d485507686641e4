"""Estimated milliseconds on named phones from exact Arm execution: phone profiles (data), per-block
executions and simulated cache misses (the `block_cache` QEMU plugin), a pipeline model per hot block
(llvm-mca) and a bandwidth model for the misses. Estimates are their own kind of figure, never measured ms."""
