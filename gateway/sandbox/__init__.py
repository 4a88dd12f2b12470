"""A stand-in for rtb.retreaver.com and api.retreaver.com, for demos, tests and load tests."""
