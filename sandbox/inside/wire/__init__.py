"""Inside the isolation (see ``sandbox.inside``): plain data and words that cross between the sandbox's
processes and to the harness: values (``codec``), reasons (``reasons``), exceptions' identity
(``exception_identity``) and the framed pipe between the tests' and the program's processes (``channel``)."""
