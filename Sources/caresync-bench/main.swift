// `caresync-bench AREA…`: runs the benchmarks of each named area (all when none is named) and prints
// one `BENCH {json}` line per scenario; `Benchmarks/run` collects them into the report.
print("no benchmark areas yet")
