"""Auctions: one publisher ping offered to several Retreaver campaigns, the best bid kept.

A publisher with several postback keys sends one auction key instead; the gateway pings
the auction's destinations (one at a time by priority, or all at once), keeps the best
reservation at or above its floor, answers it byte-for-byte and remembers which
destination it came from, so the one confirmation it ever forwards goes to the winner.

    file.py          the auctions file: format, validation (errors name auction,
                     destination and field), destination keys as secrets
    book.py          the current auctions, reloaded on SIGHUP and when the file changes
    legs.py          one leg: a ping to one destination, and what its answer means
    exchange.py      waterfall and parallel, the budget, the winner
    reservations.py  uuid -> (auction, destination) until expires_at, in process or Redis
    desk.py          what the RTB endpoints call: run through the shield, answer, confirm
    counters.py      the auction's counters (labels: names from the file, fixed words)
"""
