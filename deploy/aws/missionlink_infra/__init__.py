"""MissionLink's AWS infrastructure as code (AWS CDK v2)."""
