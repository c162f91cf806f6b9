"""The analysis stages: cheap stages that read trained checkpoints and reports and write figures and tables.

One module per stage, named after it, whose work is the function of the same name:

* :mod:`~pipeline.analysis.analyze` -- ``analyze@<variant>``: first-layer filters, shape trace,
  layer summary, parameter counts and loss curve of one variant.
* :mod:`~pipeline.analysis.compare` -- ``compare@<key>``: a measured comparison of two variants.
* :mod:`~pipeline.analysis.padding` -- ``padding``: TDM 40200 Q6, convolution output shapes.
* :mod:`~pipeline.analysis.classwise_norms` -- ``classwise_norms``: CSE 849 section 2.2.

and :mod:`~pipeline.analysis.paired_tests`, the paired statistics that ``compare@`` and
``seed_study_summary`` share. ``dvc.yaml`` declares this folder as one dependency, so an edit
here reruns these cheap stages only (seconds). This file imports nothing: importing one
module of the package must not pull in the others (``analyze`` stays free of the training
engine and the datasets that ``classwise_norms`` needs).
"""
