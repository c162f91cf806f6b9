"""HKU Assignment 3's autograder: the cases, the allowed-operations rule, and a sandbox to run any submission.

``cases``       the questions q1-q4 and their randomized and edge cases (torch as the reference)
``inspection``  the seed's allowed-operations rule, checked on a file's source
``worker``      the child process that imports a submission and runs cases
``sandbox``     runs a submission in that child with time and output limits -> scores
"""
