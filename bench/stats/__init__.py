"""The statistics core: stability verdicts, SLO expressions, percentiles from histograms, confidence
intervals. Pure functions over results; used by runs, searches, compare, check and plan."""
