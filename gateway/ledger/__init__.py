"""The ping ledger: an outcome for every publisher answer, and one event per request.

outcomes.py holds the vocabulary; tap.py puts it on answers and records events; events.py
is the event and its export row; writer.py the bounded queue and background writer;
memory.py and postgres.py the two stores; admin.py the operator routes; matching.py which
of Retreaver's calls followed which reservation (reconciliation's pure matcher).
"""
