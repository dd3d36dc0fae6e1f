"""The network-namespace lab shared by the demo (`python -m wggw.lab.demo`), the netns tests and
the benchmark: throwaway namespaces, wireguard-go clients, a pretend internet. Not part of the
data plane: wggw itself never imports it."""
