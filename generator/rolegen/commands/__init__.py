"""One module per verb: each is a plain function that returns a result or raises RolegenError."""
