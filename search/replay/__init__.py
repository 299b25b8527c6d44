"""Search efficiency measured in seconds: recorded learning curves (a table of real trials run to
their last epoch) replayed through the product's own searchers and schedulers on a virtual clock,
without Ray's runtime or torch. `table` holds the recorded curves, `predict` answers a proposed
configuration with a curve, `simulator` runs one search, `figures` turns searches into the
numbers target 4 of PERFORMANCE.md is judged on. `problems` are benchmarks that bring their own
parameters and curves (LCBench through YAHPO's surrogate, NAS-Bench-201, our tables), and
`protocol` compares strategies on them the way the published benchmarks do."""
