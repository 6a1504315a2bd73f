"""Delivering notifications (`escalator notify`): the pure decisions.

What a notification becomes at each kind of destination (`messages`), when a failed delivery is
tried again (`retry`), when a burst of notifications to one person is folded into a digest
(`storm`). No I/O and no clock reads here: the notifier's runtime passes `now` in.
"""
