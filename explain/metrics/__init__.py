"""Evaluation metrics of explanations: are they faithful to the model (deletion curves, :mod:`.faithfulness`),
stable under LIME's random sampling (top-k agreement across seeds, :mod:`.stability`), and about the model at
all (Adebayo's model-randomisation check, :mod:`.sanity`)?"""
