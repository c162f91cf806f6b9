"""What every stage shares: params (``config``), errors, file writing (``io``), the stage
runner (``cli``) and the one rule that checks values against annotations (``schemas``)."""
