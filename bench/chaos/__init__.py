"""`make chaos`: the whole system on loopback under random faults, then a check that nothing
was lost or reordered (docs/reliability.md).

`schedule` draws the faults from a seed and `check` judges the outcome (both pure); `settings`
reads the knobs; `proxy` is the TCP proxy in front of each NATS node, `cluster` the processes,
`traffic` the websocket clients, `registrar` registers through the registry API, `receivers`
are the callback receivers, `inject` carries out the schedule, `stream` reads back what NATS
holds, `report` prints the table and the details, and `__main__` runs it all.
"""
