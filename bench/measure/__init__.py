"""One run: engines that send requests, the schedules that pace them, and the recorder that keeps
HDR histograms, time series and error classes. `runner.run_benchmark` ties them together."""
