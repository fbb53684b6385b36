"""Execution feedback, a stage between generation and execution: after each turn the program so far runs
(or a code prompt's completion runs against its public tests) and what went wrong goes back to the model
for a repair. In: a group's units, the generator and the run's executor. Out: conversations whose attempts
record every check and repair, and the hidden tests' verdict after every repair round. Used by ``runs``."""
