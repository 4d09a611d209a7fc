"""Data: dataset folders, image intake, face crops, the shared preprocessing path, augmentation, perturbations."""
