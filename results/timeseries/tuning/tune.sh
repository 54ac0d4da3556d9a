#!/bin/bash
# k/λ search for the time-series benchmark: seed 100 (not used in the table), two harder Gaussian sets.
for cfg in "0.5 1.0" "0.8 1.0" "0.5 0.1"; do
  set -- $cfg
  sgt reproduce timeseries --datasets Moving_SmallMiddle_Box RareTime_Box --models lstm tcn --seeds 100 \
      --k $1 --lam $2 --out results/timeseries/tuning --no-progress
done
