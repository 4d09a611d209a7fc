"""Evaluation metrics of explanations: are they faithful to the model (deletion curves, :mod:`.faithfulness`)
and stable under LIME's random sampling (top-k agreement across seeds, :mod:`.stability`)?"""
