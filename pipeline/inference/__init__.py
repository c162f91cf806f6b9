"""A trained checkpoint applied to data: predictions (``predictor``, ``predict``), test-set
metrics, the composite tests (``counterfactual``) and their figures (``evaluation``,
``figures``). Cheap stages only: nothing here decides a weight."""
