"""Controlling a running lab: the daemon behind `rolegen lab up`, its control channel, and the client the
`rolegen lab` verbs use."""
