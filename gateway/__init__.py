"""rtb-gateway: a front door for Retreaver real-time bidding."""

__version__ = "0.1.0"
