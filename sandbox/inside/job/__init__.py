"""Inside the isolation (see ``sandbox.inside``): what a job's processes run once forked. The program's side:
a printed-value program (``printing``) or the program answering the tests' calls (``candidate``). The tests'
side, in the tests' process, which decides: the proxies (``proxies``), the calls planned ahead (``plan``), the
tests (``checking``) and HumanEval+'s checks (``evalplus``)."""
