#!/bin/bash
# How results/timeseries and results/vanishing were made (2-core CPU). The two architecture groups run
# as two processes at once to use both cores (the small recurrent models leave one idle); the final
# call finds every run in the cache and writes the complete tables and figures.
set -e
sgt reproduce timeseries --models lstm lstm_cell_attention --out results/timeseries --no-progress &
sgt reproduce timeseries --models tcn transformer --out results/timeseries --no-progress
wait
sgt reproduce vanishing --out results/vanishing --no-progress
sgt reproduce timeseries --out results/timeseries --no-progress
