"""What decides the trained weights: the data a run sees (``datasets``, ``normalizer``), the
loop (``engine``), the checks that refuse a run (``checks``), and what it saves (``checkpoint``,
``resume``). A training stage imports this package and nothing that only reads its results."""
