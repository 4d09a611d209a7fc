"""Detectors: the Detector API, Keras and spectrum detectors, calibration maps and the model registry."""
