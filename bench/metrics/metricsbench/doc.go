// Command metricsbench is the query half of bench/metrics/run.sh.
//
//	metricsbench compare -hostd URL -prometheus URL -n 50
//	    asks hostd and Prometheus the benchmark's PromQL queries at the
//	    same evaluation time, compares the answers and times them.
package main
