"""`escalator notify`: the Faust app that delivers `notification.requested` events."""
