// Entry point `koala-tracker/express`: the ko_id cookie and req.koala. Never loads express itself.
export * from './middleware'
