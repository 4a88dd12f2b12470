"""The auctions' metrics, on the app's registry.

Labels are auction and destination *names* from the operator's file (bounded by the
file's own limits: 256 auctions of 32 destinations) and the fixed leg outcome words;
never a key, caller or uuid. ``gateway_auction_loser_confirmations_total`` counts
confirmations forwarded for a reservation that did not win: it must stay 0 (the confirm
path only forwards uuids remembered as winners; the counter is the alarm if that ever
breaks).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

from gateway.observe.metrics import Metrics

from .exchange import AuctionResult


class AuctionMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self._metrics = metrics
        self.legs = Counter(
            "gateway_auction_legs_total",
            "Auction legs by auction, destination and outcome (lost, late, below_floor, "
            "reserved, no_bid, upstream_*, shed)",
            ("auction", "destination", "outcome"),
            registry=r,
        )
        self.auctions = Counter(
            "gateway_auctions_total",
            "Auctions run, by auction and overall outcome (reserved or no_bid)",
            ("auction", "outcome"),
            registry=r,
        )
        self.loser_confirmations = Counter(
            "gateway_auction_loser_confirmations_total",
            "Confirmations forwarded for a reservation that lost its auction (must stay 0)",
            registry=r,
        )
        self.confirms_refused = Counter(
            "gateway_auction_confirms_refused_total",
            "Confirmations with an auction key for a uuid that did not win it (404, not forwarded)",
            registry=r,
        )
        self.routes_refused = Counter(
            "gateway_auction_routes_refused_total",
            "Winning reservations whose route could not be remembered (store full or "
            "failing): their confirmation will be refused",
            registry=r,
        )
        self.late_refused = Counter(
            "gateway_auction_late_legs_refused_total",
            "Legs cancelled at the budget because GATEWAY_AUCTION_LATE_LEGS_MAX legs were "
            "already running after their auctions",
            registry=r,
        )
        self.reloads = Counter(
            "gateway_auction_reloads_total",
            "Auctions file reloads by result (ok, invalid)",
            ("result",),
            registry=r,
        )
        self.late_legs = Gauge(
            "gateway_auction_late_legs",
            "Legs still running after their auction answered",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def settled(self, result: AuctionResult) -> None:
        """Count a settled auction's legs (``Auctioneer``'s ``on_settled``)."""
        for leg in result.legs:
            self._child(self.legs, result.auction, leg.destination, leg.outcome).inc()

    def answered(self, result: AuctionResult) -> None:
        self._child(self.auctions, result.auction, result.outcome).inc()

    def _child(self, metric: Counter, *labels: str) -> Any:
        cache_key = (id(metric), *labels)
        child = self._children.get(cache_key)
        if child is None:
            # Bounded by the file's limits; reloads that rename things add a few more.
            if len(self._children) >= 50_000:
                self._children.clear()
            child = self._children[cache_key] = self._metrics.bind(metric, *labels)
        return child
