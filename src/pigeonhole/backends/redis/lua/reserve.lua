-- ARGV: prefix, now, counter name, how many, floor. Reserve ids for writes
-- made later (a send or an add inside a transaction, a chunk of a send).
return next_ids(ARGV[3], tonumber(ARGV[4]), ARGV[5])
