"""Studies that train more runs than ``train@``: more random seeds per variant (``seed_study``)
and the CSE 849 remedies (``mitigation``). Each module is its own rerun unit in ``dvc.yaml``,
so editing one study does not retrain the other."""
