-- Reserved: the new-retail branch adds its own 0005 (0005_new_retail.sql).
-- This placeholder only keeps the numbers gapless on the salecommit branch;
-- drop it at merge and keep 0006 after the real 0005 (0006 does not depend
-- on anything 0005 does).
SELECT 1;
