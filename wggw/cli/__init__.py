"""The wggw command line: parse and print only; one module per noun."""
