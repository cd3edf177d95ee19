# The published example of the dynamic panel model (Allison, Williams & Moral-Benito 2017): the
# Cornwell-Rupert wage panel, R package plm's `Wages` (595 people x 7 years, rows ordered by
# person then year, no id column), widened the way dpm widens a panel_data(id, wave) frame:
# one row per person, <variable><wave> columns, time-invariant `ed` once. `union` is a factor
# in plm ("no"/"yes") and 0/1 in the paper (panelr's WageData): coded 1 = "yes".
#
# Usage: Rscript wages_dpm.R out.csv
suppressPackageStartupMessages(library(plm))
args <- commandArgs(trailingOnly = TRUE)
data("Wages", package = "plm")
stopifnot(nrow(Wages) == 595 * 7)
long <- data.frame(id = rep(seq_len(595), each = 7), wave = rep(1:7, times = 595),
                   wks = Wages$wks, union = as.numeric(Wages$union == "yes"),
                   lwage = Wages$lwage, ed = Wages$ed)
stopifnot(all(tapply(long$ed, long$id, function(x) length(unique(x))) == 1))
wide <- reshape(long, idvar = c("id", "ed"), timevar = "wave", direction = "wide", sep = "")
names(wide)[names(wide) == "id"] <- "client_id"
write.csv(wide, args[1], row.names = FALSE)
