"""rtnetlink for wggw: observation and changes of links, addresses, routes and ip rules.
rtnl.py is the interface the system backend uses; batch.py encodes and sends many messages in one
write, dump.py decodes dumps with struct (both much faster than pyroute2 at 10,000 objects)."""
