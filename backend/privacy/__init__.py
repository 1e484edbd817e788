"""What the law lets the backend keep about customers, enforced in storage (docs/privacy.md;
DESIGN.md section 7): the fold of receipt lines into product totals, retention, the
customer's rights."""
