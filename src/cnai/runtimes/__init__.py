"""Engines behind the Runtime protocol (:mod:`cnai.core.runtime`): ``local`` runs pods as
supervised processes on this machine."""
