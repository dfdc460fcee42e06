// Command metricsbench is the query half of bench/metrics/run.sh.
//
//	metricsbench compare -hostd URL -prometheus URL -n 50
//	    asks hostd and Prometheus the benchmark's PromQL queries at the
//	    same evaluation time, compares the answers and times them.
//
//	metricsbench families -hostd URL/metrics -node-exporter URL/metrics
//	    compares the two expositions family by family: every family
//	    node_exporter exports (but its own go_, process_ and promhttp_)
//	    must be in hostd's with the same type and label names.
package main
