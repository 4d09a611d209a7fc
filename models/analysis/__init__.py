"""Analysis: metrics, calibration fitting, evaluation, the model zoo, catalog tables, plots, dataset exploration, cost."""
