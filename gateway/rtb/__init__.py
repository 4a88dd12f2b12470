"""The publisher-facing RTB routes: parsing, validation and forwarding of pings."""
