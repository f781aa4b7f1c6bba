"""MissionLink: streamer mission donations."""
