"""The graders (this project's re-implementations; the courses' own are not public).

HKU Assignment 3's autograder (the handout's ``autograder.py -q``):

``hku``         its command line (``cnn-pipeline autograde``): one submission, or a folder -> CSV
``cases``       the questions q1-q4, called as the handout describes them; torch as the reference
``inspection``  the handout's allowed-operations rule, checked on a file's source
``monitor``     the same rule at run time, inside the worker (a TorchFunctionMode)
``worker``      the child process that imports a submission and computes its side of the cases
``sandbox``     runs that child isolated, with time, output and memory limits; compares its results
``scoring``     per-question scores, the deduction for forbidden uses, the summary

CSE 849's grading script (the handout's "Python evaluation script"):

``cse849``      grade a ``q1_test.txt`` (``cnn-pipeline grade-cse849``): format, rubric points, shortcut use
"""
