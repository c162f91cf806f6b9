"""HKU Assignment 3's autograder (this project's re-implementation): cases, the allowed-operations rule, a sandbox.

``cases``       the questions q1-q4, called as the handout describes them; torch as the reference
``inspection``  the handout's allowed-operations rule, checked on a file's source
``monitor``     the same rule at run time, inside the worker (a TorchFunctionMode)
``worker``      the child process that imports a submission and computes its side of the cases
``sandbox``     runs that child isolated, with time, output and memory limits; compares its results
``scoring``     per-question scores, the deduction for forbidden uses, the summary
"""
