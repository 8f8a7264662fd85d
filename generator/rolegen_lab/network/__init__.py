"""The lab's network: the proxies standing for Services, the TSC tunnel and the operator's route to an API server,
WAN settings on the tunnel, and the ports a lab reserves."""
