"""The staff side: accounts, sign-in, sessions and what each role may do."""
