# The entry point in the checkout (`snakemake --cores N`, `make replicate`). The workflow is
# workflow/Snakefile, where the Snakemake Workflow Catalog, snakedeploy and `module` users find it; this file
# only includes it, so both are one workflow.


include: "workflow/Snakefile"


# Snakemake keeps an included file's `default_target:` to that include, so the entry point names the target
# itself: rule all of workflow/Snakefile (the replication of config `dataset`).
workflow.default_target = "all"
